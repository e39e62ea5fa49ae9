!> @file gyre_oce.F90
!> @brief The model state and the work arrays shared by the physical processes.
module gyre_oce
   use gyre_par
   use gyre_mpp, only: ni, nj
   use gyre_dom, only: tmask, umask, vmask
   implicit none
   private

   public :: oce_alloc

   !> prognostic state (ni+2h, nj+2h, jpfld): ssh (m), u (m s-1, east faces), v (m s-1, north faces), temp (degC)
   real(wp), allocatable, target, public :: xn(:,:,:)
   real(wp), allocatable, public :: xb(:,:,:)     !< state at the start of the time step (Runge-Kutta)
   real(wp), allocatable, public :: xt(:,:,:)     !< tendencies (per second)
   real(wp), allocatable, public :: xmsk(:,:,:)   !< mask of each prognostic field (tmask, umask, vmask, tmask)
   real(wp), allocatable, public :: ht(:,:)       !< layer thickness at T points h = rn_h0 + rgfac*ssh (m)
   real(wp), allocatable, public :: uflx(:,:)     !< zonal thickness flux h*u at u points (m2 s-1)
   real(wp), allocatable, public :: vflx(:,:)     !< meridional thickness flux h*v at v points (m2 s-1)
   real(wp), allocatable, public :: zeta(:,:)     !< relative vorticity at F points, boundary condition applied (s-1)

contains

   !> Allocate the state (zero, i.e. land everywhere outside the basin) and the masks of each field.
   subroutine oce_alloc()
      integer, parameter :: h = nn_hls
      allocate(xn(1-h:ni+h, 1-h:nj+h, jpfld), xb(1-h:ni+h, 1-h:nj+h, jpfld), xt(1-h:ni+h, 1-h:nj+h, jpfld), &
         &     xmsk(1-h:ni+h, 1-h:nj+h, jpfld))
      allocate(ht(1-h:ni+h, 1-h:nj+h), uflx(1-h:ni+h, 1-h:nj+h), vflx(1-h:ni+h, 1-h:nj+h), zeta(1-h:ni+h, 1-h:nj+h))
      xn = 0._wp ; xb = 0._wp ; xt = 0._wp
      ht = rn_h0 ; uflx = 0._wp ; vflx = 0._wp ; zeta = 0._wp
      xmsk(:,:,jp_ssh) = tmask ; xmsk(:,:,jp_u) = umask ; xmsk(:,:,jp_v) = vmask ; xmsk(:,:,jp_tem) = tmask
   end subroutine oce_alloc

end module gyre_oce

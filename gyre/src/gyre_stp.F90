!> @file gyre_stp.F90
!> @brief One time step: third-order strong-stability-preserving Runge-Kutta (Shu-Osher) of all the
!!        tendencies, then the coupling hooks, the checks and the outputs of that step.
!>
!> Order inside step kt: dynamics (3 stages, one halo exchange each) -> stp_ctl -> put (cn_obr_send)
!> -> emulator get and apply -> stp_ctl -> diagnostics -> fields output -> restart.
module gyre_stp
   use gyre_par
   use gyre_mpp,  only: ni, nj, lbc_lnk, lwp
   use gyre_oce,  only: xn, xb, xt, xmsk
   use gyre_ssh,  only: ssh_flx, ssh_tend
   use gyre_dyn,  only: dyn_vor, dyn_tend
   use gyre_ldf,  only: ldf_tend
   use gyre_tra,  only: tra_tend
   use gyre_ctl,  only: stp_ctl
   use gyre_cpl,  only: cpl_step
   use gyre_diag, only: dia_step
   use gyre_io,   only: io_write
   use gyre_rst,  only: rst_write, rst_due
   implicit none
   private

   public :: stp, rhs

contains

   !> Advance the state from step kt-1 to step kt and do the per-step work.
   subroutine stp(kt)
      integer, intent(in) :: kt                 !< index of the step being done
      logical :: llprt
      call rk3()
      if (mod(kt, nn_ctl) == 0) call stp_ctl(kt, xn, 'after the dynamics')
      if (cpl_step(kt)) call stp_ctl(kt, xn, 'after applying the emulated state')
      llprt = .false.
      if (nn_print > 0) llprt = mod(kt, nn_print) == 0 .or. kt == nitend
      call dia_step(kt, xn, llprt)
      call io_write(kt, xn)
      if (rst_due(kt)) then
         if (mod(kt, nn_ctl) /= 0) call stp_ctl(kt, xn, 'before writing the restart')
         call rst_write(kt, xn)
      end if
   end subroutine stp

   !> SSP-RK3: x1 = x + dt L(x); x2 = 3/4 x + 1/4 (x1 + dt L(x1)); x = 1/3 x + 2/3 (x2 + dt L(x2)).
   subroutine rk3()
      integer :: ji, jj, jf
      real(wp), parameter :: z34 = 0.75_wp, z14 = 0.25_wp, z13 = 1._wp / 3._wp, z23 = 2._wp / 3._wp
      xb = xn
      ! stage 1
      call rhs(xn, xt)
      do jf = 1, jpfld ; do jj = 1, nj ; do ji = 1, ni
         xn(ji,jj,jf) = (xb(ji,jj,jf) + rn_dt * xt(ji,jj,jf)) * xmsk(ji,jj,jf)
      end do ; end do ; end do
      call lbc_lnk(xn)
      ! stage 2
      call rhs(xn, xt)
      do jf = 1, jpfld ; do jj = 1, nj ; do ji = 1, ni
         xn(ji,jj,jf) = (z34 * xb(ji,jj,jf) + z14 * (xn(ji,jj,jf) + rn_dt * xt(ji,jj,jf))) * xmsk(ji,jj,jf)
      end do ; end do ; end do
      call lbc_lnk(xn)
      ! stage 3
      call rhs(xn, xt)
      do jf = 1, jpfld ; do jj = 1, nj ; do ji = 1, ni
         xn(ji,jj,jf) = (z13 * xb(ji,jj,jf) + z23 * (xn(ji,jj,jf) + rn_dt * xt(ji,jj,jf))) * xmsk(ji,jj,jf)
      end do ; end do ; end do
      call lbc_lnk(xn)
   end subroutine rk3

   !> All tendencies of a state with valid halos, on the interior.
   subroutine rhs(px, pt)
      real(wp), intent(in)    :: px(1-nn_hls:, 1-nn_hls:, :)   !< state
      real(wp), intent(inout) :: pt(1-nn_hls:, 1-nn_hls:, :)   !< tendencies (per second)
      call ssh_flx(px)
      call ssh_tend(pt)
      call dyn_vor(px)
      call dyn_tend(px, pt)
      call ldf_tend(px, pt)
      call tra_tend(px, pt)
   end subroutine rhs

end module gyre_stp

!> @file gyre_dom.F90
!> @brief Grid, land mask (closed basin, islands from &nammask, or a netCDF mask file) and Coriolis parameter.
!>
!> Arakawa C grid, NEMO indexing: T(i,j) is the cell centre, u(i,j) its east face, v(i,j) its north face and
!> F(i,j) its north-east corner. Every mask is computed from the global mask, halos included, so that each
!> local value is the same whatever the decomposition; outside the basin everything is land.
module gyre_dom
   use netcdf
   use gyre_par
   use gyre_mpp, only: ni, nj, nimpp, njmpp, ctl_stop, lwp
   implicit none
   private

   public :: dom_glob, dom_init

   real(wp), allocatable, public :: tmask(:,:), umask(:,:), vmask(:,:)  !< 1 ocean, 0 land at T, u, v points (local, with halos)
   real(wp), allocatable, public :: fmask(:,:)   !< vorticity mask at F points: 1 ocean, rn_shlat on the coast, 0 land
   real(wp), allocatable, public :: ff_f(:,:)    !< Coriolis parameter at F points (s-1)
   real(wp), allocatable, public :: tmask_glo(:,:)   !< global T mask (nn_nx, nn_ny), on every rank
   real(wp), allocatable, public :: xt_glo(:), yt_glo(:)   !< global T-point coordinates (m)
   real(wp), public :: rlx, rly                  !< basin size (m)
   integer,  public :: nocean = 0                !< number of ocean T points

contains

   !> Global coordinates and T mask (before the decomposition: ln_landdom removes the land-only tiles).
   subroutine dom_glob()
      integer :: ji, jj
      if (allocated(tmask_glo)) return
      rlx = nn_nx * rn_dx ; rly = nn_ny * rn_dy
      allocate(xt_glo(nn_nx), yt_glo(nn_ny), tmask_glo(nn_nx, nn_ny))
      do ji = 1, nn_nx ; xt_glo(ji) = (ji - 0.5_wp) * rn_dx ; end do
      do jj = 1, nn_ny ; yt_glo(jj) = (jj - 0.5_wp) * rn_dy ; end do
      call glob_mask(tmask_glo)
      nocean = nint(sum(tmask_glo))
      if (nocean == 0) call ctl_stop('&nammask: the land mask leaves no ocean point')
   end subroutine dom_glob

   !> Build the masks and the Coriolis parameter of this rank's tile (after dom_glob and the decomposition).
   subroutine dom_init()
      integer, parameter :: h = nn_hls
      real(wp), allocatable :: zg(:,:)     ! padded global T mask
      integer :: ji, jj, ig, jg
      real(wp) :: zu
      call dom_glob()
      allocate(zg(1-h:nn_nx+h+1, 1-h:nn_ny+h+1))
      zg = 0._wp
      zg(1:nn_nx, 1:nn_ny) = tmask_glo
      allocate(tmask(1-h:ni+h, 1-h:nj+h), umask(1-h:ni+h, 1-h:nj+h), vmask(1-h:ni+h, 1-h:nj+h), &
         &     fmask(1-h:ni+h, 1-h:nj+h), ff_f(1-h:ni+h, 1-h:nj+h))
      do jj = 1-h, nj+h
         do ji = 1-h, ni+h
            ig = ji + nimpp ; jg = jj + njmpp
            tmask(ji,jj) = zg(ig, jg)
            umask(ji,jj) = zg(ig, jg) * zg(ig+1, jg)
            vmask(ji,jj) = zg(ig, jg) * zg(ig, jg+1)
            zu = zg(ig,jg) * zg(ig+1,jg) * zg(ig,jg+1) * zg(ig+1,jg+1)
            if (zu > 0.5_wp) then
               fmask(ji,jj) = 1._wp
            else if (zg(ig,jg)*zg(ig+1,jg) + zg(ig,jg+1)*zg(ig+1,jg+1) + zg(ig,jg)*zg(ig,jg+1) &
               &     + zg(ig+1,jg)*zg(ig+1,jg+1) > 0.5_wp) then
               fmask(ji,jj) = rn_shlat          ! coastal corner: free slip (0) ... no slip (2)
            else
               fmask(ji,jj) = 0._wp
            end if
            ff_f(ji,jj) = rn_f0 + rn_beta * (real(jg, wp) * rn_dy - 0.5_wp * rly)
         end do
      end do
      if (lwp) write(*, '(a,i0,a,i0,a,i0,a,f8.1,a,f8.1,a)') ' dom_init: ', nn_nx, ' x ', nn_ny, ' points, ', nocean, &
         & ' ocean; basin ', rlx*1.e-3_wp, ' x ', rly*1.e-3_wp, ' km'
   end subroutine dom_init

   !> Global T mask: closed basin, minus the land boxes of &nammask, or read from cn_mask_file.
   subroutine glob_mask(pm)
      real(wp), intent(out) :: pm(:,:)          !< global mask (nn_nx, nn_ny), 1 ocean 0 land
      integer :: jb, ji, jj, incid, ivid, ierr, idims(2), ilen, jd
      real(wp) :: zx1, zx2, zy1, zy2
      character(len=lc) :: cl
      pm = 1._wp
      if (len_trim(cn_mask_file) > 0) then
         ierr = nf90_open(trim(cn_mask_file), NF90_NOWRITE, incid)
         if (ierr /= NF90_NOERR) call ctl_stop('&nammask: cannot open cn_mask_file '''//trim(cn_mask_file)//''': ' &
            &                                  //trim(nf90_strerror(ierr)))
         ierr = nf90_inq_varid(incid, trim(cn_mask_var), ivid)
         if (ierr /= NF90_NOERR) call ctl_stop('&nammask: no variable '''//trim(cn_mask_var)//''' in '//trim(cn_mask_file))
         ierr = nf90_inquire_variable(incid, ivid, dimids=idims)
         do jd = 1, 2
            ierr = nf90_inquire_dimension(incid, idims(jd), len=ilen)
            if (ilen /= merge(nn_nx, nn_ny, jd == 1)) then
               write(cl, '(a,i0,a,i0,a)') ' must be (y,x) = (', nn_ny, ',', nn_nx, ') as in &namdom'
               call ctl_stop('&nammask: '//trim(cn_mask_var)//' in '//trim(cn_mask_file)//trim(cl))
            end if
         end do
         ierr = nf90_get_var(incid, ivid, pm)
         if (ierr /= NF90_NOERR) call ctl_stop('&nammask: cannot read '//trim(cn_mask_var)//': '//trim(nf90_strerror(ierr)))
         ierr = nf90_close(incid)
         where (pm > 0.5_wp)
            pm = 1._wp
         elsewhere
            pm = 0._wp
         end where
      end if
      do jb = 1, jp_maxisl
         zx1 = rn_island(1,jb) * 1.e3_wp ; zx2 = rn_island(2,jb) * 1.e3_wp
         zy1 = rn_island(3,jb) * 1.e3_wp ; zy2 = rn_island(4,jb) * 1.e3_wp
         if (zx2 <= zx1 .or. zy2 <= zy1) cycle
         do jj = 1, nn_ny ; do ji = 1, nn_nx
            if (xt_glo(ji) >= zx1 .and. xt_glo(ji) <= zx2 .and. yt_glo(jj) >= zy1 .and. yt_glo(jj) <= zy2) pm(ji,jj) = 0._wp
         end do ; end do
      end do
   end subroutine glob_mask

end module gyre_dom
